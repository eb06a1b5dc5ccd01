"""The command line: parse, call one store or domain function, render."""
