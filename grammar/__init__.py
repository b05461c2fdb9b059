"""The Lark grammar of the nsgsolve policy language, shipped as package data (nsgsolve.grammar)."""
