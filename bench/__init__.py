"""convlens benchmark: the pipeline against the chapter's notebook (issue 5). Run with ``python -m bench``."""
