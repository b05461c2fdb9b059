"""The policy language: text to model and back.

``syntax`` parses ``.nsg`` text with the Lark grammar (grammar/nsgsolve.lark) into a tree with
positions, ``build`` turns the tree into a :class:`nsgsolve.model.Policy` (names checked, errors with
file:line:column), ``printer`` writes a policy back as text (``fmt``, ``import``). Nothing here knows
what a rule means; that is :mod:`nsgsolve.semantics`.
"""
