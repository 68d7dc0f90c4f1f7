"""The pure core: reading, validation, planning, guard, errors CSV and job IDs.

Nothing here touches files, the network, a database or the clock; every function takes
plain values and returns plain values, so the whole pipeline is tested without servers.
"""
