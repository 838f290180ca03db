"""livus.service"""
