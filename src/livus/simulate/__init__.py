"""livus.simulate"""
