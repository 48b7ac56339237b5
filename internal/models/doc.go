// Package models is Atelier's model repository: it finds the SavedModels under a
// folder laid out as <name>/<version>/saved_model.pb, loads every version, reads each
// one's signatures and labels, works out its role (classifier, detector or generator)
// from its serving signature, and hands the right version to the request paths.
package models
