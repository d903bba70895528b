"""Generators of the project's documentation: the method pages (``python -m kdzoo.docgen.methods``) and the
tutorial's commands and figures (``python -m kdzoo.docgen.tutorial``). Tests regenerate what they write and
compare it with the checked-in copies."""
