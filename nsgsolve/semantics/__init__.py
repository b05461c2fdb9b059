"""What a policy means, for one packet at a time: the specification in code.

``addresses`` (interval sets over IPv4 and ports), ``servicetags`` (tag data), ``platform`` (Azure's
rules outside the NSGs, as data), ``resolve`` (a model becomes address and port sets per VNet),
``evaluate`` (the reference evaluator: one flow, decided as Azure would) and ``classify`` (the same
first match, fast). Everything symbolic (regions, Z3) is tested against ``evaluate``.
"""
