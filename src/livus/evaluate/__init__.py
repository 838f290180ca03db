"""livus.evaluate"""
