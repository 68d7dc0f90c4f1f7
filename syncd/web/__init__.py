"""The back office: a small server-rendered web app for support and admins.

Support looks up a job by the ID a customer quoted, reads it as `syncd jobs show` shows
it, downloads its errors and changes CSVs; admins also decide held jobs, scan sources
and upload files. Every page works without JavaScript; htmx (vendored) makes a few of
them update in place. Pages call the functions the command line calls. `create_app`
(in `syncd.web.app`) builds it; `syncd.web.serving` serves it, inside `syncd run` or
alone as `syncd web`.
"""
