"""A local emulator of Aspose.OCR Cloud's RecognizeRegions API that does real OCR, offline.

It speaks the vendor's wire protocol (``shared/docs/aspose-ocr-api.md``) with its own schemas,
separate from the client's models, so that a drift between the two shows up in a contract
test. Build it with :func:`ocrflow.emulator.app.create_app`; serve it with
``python -m ocrflow.emulator``.
"""
