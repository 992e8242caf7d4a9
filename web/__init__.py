"""The Flask console (installed as ``callcenter.web``)."""
