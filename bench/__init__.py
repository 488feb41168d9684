"""Research tooling around the newsclf model: benchmarks on real news, staged tuning, serving timings.

Not part of the product: nothing in newsclf, features or train imports it, and the wheel does not
ship it. Run it from the project folder as ``python -m bench run|tune|serving`` (``make bench``,
``make tune``, ``make bench-serving``). The published results sit beside the code in this folder.
"""
