"""The project's contracts: docs against the code, architecture, the mutation sampler."""
