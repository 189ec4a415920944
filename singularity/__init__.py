"""The Singularity/Apptainer definition file, shipped in the wheel as ``hpctriton.singularity``
(setup.cfg maps this folder there); read it with ``hpctriton.image.definition_text()``."""
