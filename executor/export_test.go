package executor

// LaneOf is laneOf, for tests that need runs in different lanes.
var LaneOf = laneOf
