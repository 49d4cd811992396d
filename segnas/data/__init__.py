"""Data: prepared datasets, transforms, the meta split and the stem feature cache.

Import from the submodules (``segnas.data.prepared``, ``segnas.data.split``, ...): this file
imports none of them, so a stage depends only on the data modules it uses.
"""
