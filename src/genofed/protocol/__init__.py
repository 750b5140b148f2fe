"""What node and coordinator agree on: messages, the job catalogue and the array codec.

This is the only package both sides import.
"""
