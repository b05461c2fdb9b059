"""Exact region arithmetic over the five-field packet space: every packet at once, without a solver.

``box`` holds the Box type, the rule-to-box function and the memoised partition (``Splitter``) that
every region walk uses; ``space`` extends address fields so dynamic NIC addresses stay exact;
``paths`` turns the layers between two endpoints, platform entries included, into first-match lists.
"""
