"""Recording: the recorder (video, frames.csv, markers, metadata), the Fex CSV's schema and writer, and
the columnar copy beside it."""
