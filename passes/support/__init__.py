"""passes/support"""
