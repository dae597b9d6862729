"""What a person takes away from a result (pneumo.reading.Result): the picture with its heatmap and
lung outline, the window/level view, the words about a map, the PDF and the CSV, the DICOM Secondary
Capture and Structured Report, and the page's figures."""
