package queue

// PoolIDOf is poolIDOf, for the tests.
var PoolIDOf = poolIDOf
