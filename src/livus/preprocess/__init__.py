"""livus.preprocess"""
