"""Published sizes and SHA-256s of the D4RL files in `d4rl_catalog`.

Source: TensorFlow Datasets' ``checksums.tsv`` files of its D4RL builders
(``tensorflow_datasets/d4rl/d4rl_{mujoco_hopper,mujoco_walker2d,
mujoco_halfcheetah,mujoco_ant,adroit_door,adroit_hammer,adroit_pen}/
checksums.tsv``), which TFDS recorded when it downloaded each file from
rail.eecs.berkeley.edu. Facts, not code: a file name, its size in bytes and
its SHA-256. The relocate files have no published checksum there and are
absent here (a download of one says its hash is unverified).
"""

# {file name at the catalogue's address: (bytes, sha256)}
D4RL_FILE_CHECKSUMS: dict[str, tuple[int, str]] = {
    "hopper_expert-v2.hdf5": (
        152_427_435, "01aa219a5f8eea5e639eccdc636ec2bf40e317159a95cf4bf6e985f16909941b"),
    "hopper_medium-v2.hdf5": (
        152_756_557, "5bdf1bc4a713c82941de44633df669b36c89850b652a25985166796d25cf71a0"),
    "hopper_medium_expert-v2.hdf5": (
        304_537_315, "9d51ad87f8c905be3880d84c6140bcdb7fbf39a19e046a237f238ba34fec9e26"),
    "hopper_medium_replay-v2.hdf5": (
        75_854_457, "e121c5f7c9857a307baa9edc6a2c3b48e85fedb9ac316ecddd0f48ca7ef4e39b"),
    "walker2d_expert-v2.hdf5": (
        230_567_195, "2985dc3d436a8baa10e8f43f946fe1d7c6337a4e4fbc65def70618093b18c59a"),
    "walker2d_medium-v2.hdf5": (
        232_254_996, "cf00f43add04c17fdfc2958dd581dea0851b2e5bedbe6fda073758a8f841aeda"),
    "walker2d_medium_expert-v2.hdf5": (
        462_197_079, "6b8d7f868c45bbaedf460be797fb7271b46dee6ebe45fe7a64319f2005b59a04"),
    "walker2d_medium_replay-v2.hdf5": (
        86_323_963, "e75de96a4f77acf7d4e0d6fdf0d7ccb177c26c44bb4388e4fd99f543ccfa18db"),
    "halfcheetah_expert-v2.hdf5": (
        237_464_597, "d9fe53bb994eb1e20a99b4fa3412cd76a1bb7966a7ff55e0fcbdd6081bd2965f"),
    "halfcheetah_medium-v2.hdf5": (
        237_727_262, "41324e8487a9556d8cfa4538827f8937f4d63dae3030825ebc9f3a726ed08ca0"),
    "halfcheetah_medium_expert-v2.hdf5": (
        474_567_252, "015db75dae5bbe8e94029b71fa0bafc2073365df0c94744e71031189f3f79c06"),
    "halfcheetah_medium_replay-v2.hdf5": (
        59_448_533, "48d494a4770c11f48260736dec090b78bdca8375647ed4d24bfa5b6610c7f683"),
    "ant_expert-v2.hdf5": (
        373_231_677, "fa22531ca79ea051006fa48bb652120d2e12c813919c530369a03c2688311b0f"),
    "ant_medium-v2.hdf5": (
        376_239_825, "461c03b9f70f40d66b47608a92965e4ef3642bd9cdb1320d10acc92754167137"),
    "ant_medium_expert-v2.hdf5": (
        748_335_217, "8cfb64e62d8944b5d9dada5f0cfc13a295fafe0c6ba58b778e32ebf16c95aef1"),
    "ant_medium_replay-v2.hdf5": (
        136_482_252, "844c4e5743ef51091f2106a3570b257fb149032c4743f8a5f02f40adc3b42a46"),
    "door-cloned-v1.hdf5": (
        294_356_136, "1f6a60ecc4d2a2e5c02f41dd3412be61bb265a33dcf120ceee9e9682d4fe4d48"),
    "door-expert-v1.hdf5": (
        536_056_678, "66df4cd4e0a1e0b72ea72653ce088e29ecbfa99bac3cd2b52e64092e9a0aaab4"),
    "door-human-v1.hdf5": (
        3_121_206, "f9691288c3ddf2b4e7b31bdae0d8444b80ba035515495f8a902d60c43ee09370"),
    "hammer-cloned-v1.hdf5": (
        446_616_879, "e48d75b159bdd72f51d3f01448d3eca4d38275714e11e995c14a36f6cf159db3"),
    "hammer-expert-v1.hdf5": (
        557_047_483, "1c069a0f6e4852493023c77dc3b3a12d8d5ac2e3a034827fea3ab8a161e7185f"),
    "hammer-human-v1.hdf5": (
        5_606_475, "3e42f3f49b5c92a901601dfe867c6c62a9651cbe79f6760ec8b402a15816a498"),
    "pen-cloned-v1.hdf5": (
        155_074_191, "6d1a982cee1950501bedebbddedbcbb377e6284d379986c83abac8a6c0be0c22"),
    "pen-expert-v1.hdf5": (
        262_040_663, "3791b8ca6a802061770af2977c051ac3ae261488210ce73788760a5b8308f374"),
    "pen-human-v1.hdf5": (
        2_040_573, "209e345b2150b633f30a11612612c60f49e941f127ce6c4dc0cd790501c46f9f"),
}
