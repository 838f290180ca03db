"""livus.models"""
