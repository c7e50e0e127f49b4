"""snncc/hw"""
