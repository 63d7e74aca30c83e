package httpapi

// WriteTriggerReply is writeTriggerReply, for the status mapping's tests.
var WriteTriggerReply = writeTriggerReply
