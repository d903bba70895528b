"""Generators of the project's documentation, each ``python -m kdzoo.docgen.NAME`` from the repository root and all
but the tutorial's by ``make docs``: the method pages (``methods``), the support table (``support``), the method
counts in prose (``counts``), the generated parts of the tutorial's tour (``tour``) and of the Chinese methods page
(``zh_methods``), the results page (``results``), and the tutorial's outputs and figures (``tutorial``, which
trains). Tests regenerate what they write and compare it with the checked-in copies."""
