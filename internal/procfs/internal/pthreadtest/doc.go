// Package pthreadtest starts C threads that contend on one pthread mutex,
// for the procfs tests: one thread holds the mutex while the others block in
// pthread_mutex_lock, so that their futex waits share the mutex's address.
// It needs Linux and cgo; elsewhere it is empty.
package pthreadtest
