"""The cohort: generic characters that visual scores are measured against.

``bundled`` draws the pictures that ship with the project; ``normalise`` turns a raw
similarity into "more like this entity than like characters in general".
"""
