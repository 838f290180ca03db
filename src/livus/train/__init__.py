"""livus.train"""
