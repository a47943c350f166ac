"""Plain-Python helpers of the campaign sender: no ``odoo`` import here.

They are unit-tested without a database (``tests/test_tools_*.py``).
"""
