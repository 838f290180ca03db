"""livus.infer"""
