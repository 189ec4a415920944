"""Jinja2 job templates, shipped inside the wheel as ``hpctriton.templates``."""
