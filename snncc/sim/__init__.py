"""snncc/sim"""
