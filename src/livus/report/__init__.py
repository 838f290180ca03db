"""livus.report"""
