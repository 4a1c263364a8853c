package server

import rthttp "github.com/rendertrust/rendertrust/http"

// sharedWriteMarks is what the API shares read-your-writes marks through:
// the write_marks table on PostgreSQL, where a creator's next read may
// reach another API process; nothing on SQLite (one process).
func (m *Main) sharedWriteMarks() rthttp.WriteMarks {
	if m.writeMarks == nil {
		return nil // a nil *cluster.WriteMarks is not a nil interface
	}
	return m.writeMarks
}
