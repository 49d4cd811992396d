"""The comparison of the trained controller with uniform sampling (paper Sect. 4.3): its params
(``config``), file layout (``layout``), steps (``steps``) and the stage's plan (``stage``)."""
