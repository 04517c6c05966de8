"""What the tests share: tiny data and models, a DVC repository, the README run, report pages."""
