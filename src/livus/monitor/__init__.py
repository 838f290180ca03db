"""livus.monitor"""
