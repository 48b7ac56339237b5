"""Atelier's model building: data loading, model definitions, training and export.

Every model the server ships is built here from Fashion-MNIST and exported as a
SavedModel with an explicit serving signature, into savedmodels/<name>/<version>/.
"""
