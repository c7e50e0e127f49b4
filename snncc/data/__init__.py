"""snncc/data"""
