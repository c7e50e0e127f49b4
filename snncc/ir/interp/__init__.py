"""snncc/ir/interp"""
