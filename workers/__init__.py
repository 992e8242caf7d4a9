"""RQ jobs and the worker entry point (installed as ``callcenter.workers``)."""
