"""hpctriton."""
