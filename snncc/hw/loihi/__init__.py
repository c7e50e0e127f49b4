"""snncc/hw/loihi"""
