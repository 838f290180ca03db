"""livus.io"""
