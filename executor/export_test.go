package executor

// LaneOf is laneOf, for tests that need runs in different lanes.
var LaneOf = laneOf

// CarriedGroups is how many groups of run events b holds for its Appender.
func (b EmbeddedBus) CarriedGroups() int {
	n := 0
	b.groups.byUUID.Range(func(any, any) bool { n++; return true })
	return n
}
