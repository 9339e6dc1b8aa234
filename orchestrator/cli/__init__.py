"""The ``ruche`` command line: thin Click commands that parse, call an action and render."""
