"""Actions: one module per verb. Each takes plain values, does the work, and gives plain data.

Actions never print: they report progress through a callback and give results the CLI renders.
"""
