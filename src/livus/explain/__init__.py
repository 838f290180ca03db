"""livus.explain"""
