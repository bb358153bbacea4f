"""Write the navigation / plans / coils / manifests groups of the bad-input corpus (and their cases.json).

Run from anywhere: ``python tests/bad_inputs/make_navigation_plans_coils_manifests.py``. Every
file is small, written by hand the way the broken files arrive (a vendor export with a sheared
pose, an XML entity bomb, a plan with a newer schema, a truncated coil, a workspace whose
manifest names a missing file...). Each case gives the command line and the regex its one-line
error must match (see ``tests/test_bad_inputs.py``).
"""

from __future__ import annotations

import base64
import json
import shutil
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IMPORT = ["import-plan", "{file}", "--out", "{out}.json"]
POSES = ["simulate", "tms", "no-subject", "--coil", "Magstim_D70", "--poses", "{file}", "--out", "{out}"]
EXPORT = ["export", "{file}", "--format", "localite", "--out", "{out}.xml"]
SHOW_COIL = ["coils", "show", "{file}"]
WORKSPACE = ["workspace", "{file}"]

# a coil pose in navigator axes (x, y = handle, z = into the head), and in Localite axes
POSE = np.array([[1.0, 0.0, 0.0, -40.5], [0.0, -1.0, 0.0, 30.25], [0.0, 0.0, -1.0, 60.0], [0.0, 0.0, 0.0, 1.0]])
LOC = POSE.copy()
LOC[:3, :3] = POSE[:3, :3] @ np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])


def m4d(m: np.ndarray, fmt: str = "{:.6f}", drop: str | None = None, replace: dict | None = None) -> str:
    cells = {f"data{i}{j}": fmt.format(m[i, j]) for i in range(4) for j in range(4)}
    cells.update(replace or {})
    return "<Matrix4D " + " ".join(f'{k}="{v}"' for k, v in cells.items() if k != drop) + "/>"


def instrument_markers(*markers: str, space: str = "RAS") -> str:
    body = "".join(
        f'    <InstrumentMarker alwaysVisible="false" index="{k}" selected="false">\n'
        f'        <Marker additionalInformation="" color="#ff0000" description="M{k + 1}" set="true">\n'
        f"            {m}\n        </Marker>\n    </InstrumentMarker>\n" for k, m in enumerate(markers))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<InstrumentMarkerList coordinateSpace="{space}">\n'
            f"{body}</InstrumentMarkerList>\n")


def trigger(matrix: str, t_ms: int, didt: str = "62.0", amp: str = "45.0", tracked: bool = True) -> str:
    return (f'    <TriggerMarker color="#ffafaf" description="" recordingTime="{t_ms}" selected="false" '
            f'set="{str(tracked).lower()}" visibility="true">\n        <ResponseValues>\n'
            f'            <Value key="valueA" response="{didt}"/>\n            <Value key="response" response="NaN"/>\n'
            f'            <Value key="amplitudeA" response="{amp}"/>\n        </ResponseValues>\n'
            f"        {matrix}\n    </TriggerMarker>\n")


def trigger_markers(*items: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<TriggerMarkerList coordinateSpace="RAS" isOnlineReading="false" startTime="13:55:07.658">\n'
            '    <ResponseParameters selectedResponseChannel="0">\n'
            '        <responseDescription id="valueA" maxValue="200.0" minValue="0.0" name="Value A (di/dt)" unit="A/us"/>\n'
            '        <responseDescription id="amplitudeA" maxValue="100.0" minValue="0.0" name="Amplitude A" unit="%"/>\n'
            "    </ResponseParameters>\n" + "".join(items) + "</TriggerMarkerList>\n")


def deformed(m: np.ndarray, d: np.ndarray) -> np.ndarray:
    out = m.copy()
    out[:3, :3] = out[:3, :3] @ d
    return out


BS_HEADER = ("# Version: 14\n# Coordinate system: {system}\n# Created by: Brainsight 2.5.3\n"
             "# Units: millimetres, degrees, milliseconds, and microvolts\n# Encoding: UTF-8\n"
             "# Notes: Each column is delimited by a tab. Each value within a column is delimited by a semicolon.\n"
             "# Target Name\tLoc. X\tLoc. Y\tLoc. Z\tm0n0\tm0n1\tm0n2\tm1n0\tm1n1\tm1n2\tm2n0\tm2n1\tm2n2\n")
BS_SAMPLES = ("# Sample Name\tSession Name\tIndex\tAssoc. Target\tLoc. X\tLoc. Y\tLoc. Z\tm0n0\tm0n1\tm0n2\tm1n0\tm1n1"
              "\tm1n2\tm2n0\tm2n1\tm2n2\tDist. to Target\tTarget Error\tAngular Error\tTwist Error\tStim. Power A"
              "\tStim. Pulse Interval\tStim. Power B\tDate\tTime\tCreation Cause\tCrosshairs Driver\tOffset\tComment\n")


def ant(target: dict | None, **over) -> str:
    ct = {"Name": "CoilMarker_1", "CoordinateSystem": "ASSOCIATED_IMAGE", "PositionalUnit": "mm",
          "CoilAxesConvention": "simnibs", "CoilPose": {"RigidTransformMatrix4x4": POSE.tolist()}}
    ct.update(over)
    doc = {"Configuration": {"SourceInfo": {"AppName": "visor2", "AppVersion": "2.8.0"}},
           "TargetMarkers": [] if target is None else [{"CoilTarget": ct}]}
    return json.dumps(doc, indent=2)


def plan(**over) -> str:
    d = {"schema_version": 1, "kind": "navigator-plan", "name": "bad", "coordinate_system": "RAS",
         "units": "mm", "coil_axes": "navigator", "targets": [{"name": "L-DLPFC", "position": [-38.0, 44.0, 26.0]}],
         "coil_poses": [{"name": "hotspot", "matrix": POSE.tolist(), "target": "L-DLPFC"}], "montages": []}
    d.update(over)
    return json.dumps(d, indent=1)


def write(group: str, files: dict[str, str | bytes], cases: list[dict]) -> None:
    folder = HERE / group
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for name, content in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8", newline="\n")
    (folder / "cases.json").write_text("[\n" + ",\n".join("  " + json.dumps(c) for c in cases) + "\n]\n")


def navigation() -> None:
    shear = np.array([[1.0, 0.04, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
            ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
            '<InstrumentMarkerList coordinateSpace="RAS">&lol2;</InstrumentMarkerList>\n')
    files = {
        "InstrumentMarker_empty.xml": instrument_markers(),
        "InstrumentMarker_sheared.xml": instrument_markers(m4d(LOC), m4d(deformed(LOC, shear))),
        "InstrumentMarker_scaled.xml": instrument_markers(m4d(deformed(LOC, np.eye(3) * 1.05))),
        "InstrumentMarker_mirrored.xml": instrument_markers(m4d(deformed(LOC, np.diag([1.0, 1.0, -1.0])))),
        "InstrumentMarker_missing_data23.xml": instrument_markers(m4d(LOC, drop="data23")),
        "InstrumentMarker_text_number.xml": instrument_markers(m4d(LOC, replace={"data03": "left"})),
        "InstrumentMarker_mni_space.xml": instrument_markers(m4d(LOC), space="MNI305"),
        "InstrumentMarker_truncated.xml": instrument_markers(m4d(LOC))[:260],
        "InstrumentMarker_entity_bomb.xml": bomb,
        "EntryTarget_empty.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<EntryTargetList coordinateSpace="RAS">\n'
                                 "</EntryTargetList>\n",
        "TriggerMarkers_Coil0_empty.xml": trigger_markers(),
        "TriggerMarkers_Coil0_untracked.xml": trigger_markers(*(trigger(m4d(np.eye(4)), t, "NaN", "0.0", False)
                                                                for t in (1000, 2000, 3000))),
        "TriggerMarkers_Coil0_scaled_pulse.xml": trigger_markers(trigger(m4d(LOC), 1000),
                                                                 trigger(m4d(deformed(LOC, np.eye(3) * 0.9)), 2000)),
        "TriggerMarkers_Coil0_no_intensity.xml": trigger_markers(trigger(m4d(LOC), 1000, "NaN", "0.0")),
        "brainsight_empty.txt": BS_HEADER.format(system="NIfTI:Q:Aligned") + BS_SAMPLES,
        "brainsight_internal_space.txt": BS_HEADER.format(system="Brainsight")
                                         + "T1\t40.500\t30.250\t60.000\t-1\t0\t0\t0\t-1\t0\t0\t0\t1\n",
        "brainsight_bad_number.txt": BS_HEADER.format(system="NIfTI:Aligned")
                                     + "T1\t40.500\t30.250\tsixty\t-1\t0\t0\t0\t-1\t0\t0\t0\t1\n",
        "visor2_unknown_axes.mrk": ant({}, CoilAxesConvention="localite"),
        "visor2_no_coil_targets.mrk": ant(None),
        "visor2_matrix_3x4.mrk": ant({}, CoilPose={"RigidTransformMatrix4x4": POSE[:3].tolist()}),
        "visor2_not_json.mrk": '{"TargetMarkers": [ {"CoilTarget": {"Name": "a",\n',
        "softaxic_empty.stmpx": '<!DOCTYPE stmp>\n<stmp>\n <fmpm dataset="20210826-175502"/>\n</stmp>\n',
        "softaxic_missing_cosine.stmpx": ('<!DOCTYPE stmp>\n<stmp>\n <fmpm dataset="20210826-175502">\n'
                                          '  <fmp global="0" id="P001">\n   <fp m11="0.234913" y="2.26082" '
                                          'm02="0.926273" m01="0.335503" z="68.1565" m00="-0.171625" m22="-0.364897" '
                                          'x="-51.3255" m21="0.912279" id="8700339" ts="1629993666766" '
                                          'm10="0.967445" m20="-0.186001"/>\n  </fmp>\n </fmpm>\n</stmp>\n'),
        "invesalius_no_world_columns.mkss": ('##INVESALIUS3_MARKER_FILE_5\n"marker_id"\t"x"\t"y"\t"z"\t"label"\n'
                                             '0\t1.0\t2.0\t3.0\t"a"\n'),
        "slicer_no_markups.mrk.json": json.dumps({"@schema": "https://raw.githubusercontent.com/slicer/slicer/"
                                                  "master/Modules/Loadable/Markups/Resources/Schema/"
                                                  "markups-schema-v1.0.3.json#", "markups": {}}),
        "unknown_format.dat": "this is not a navigation file\n",
    }
    cases = [
        (IMPORT, "InstrumentMarker_empty.xml", r"InstrumentMarker_empty\.xml: no InstrumentMarker entries"),
        (IMPORT, "InstrumentMarker_sheared.xml",
         r"InstrumentMarker_sheared\.xml: coil pose 'M2' is not a rigid pose: its rotation part is sheared"),
        (IMPORT, "InstrumentMarker_scaled.xml",
         r"InstrumentMarker_scaled\.xml: coil pose 'M1' is not a rigid pose: its rotation part is scaled by 1\.05"),
        (IMPORT, "InstrumentMarker_mirrored.xml",
         r"InstrumentMarker_mirrored\.xml: coil pose 'M1' is not a rigid pose: its rotation part is a reflection"),
        (IMPORT, "InstrumentMarker_missing_data23.xml",
         r"InstrumentMarker_missing_data23\.xml: InstrumentMarker 'M1': Matrix4D has no data23"),
        (IMPORT, "InstrumentMarker_text_number.xml",
         r"InstrumentMarker_text_number\.xml: InstrumentMarker 'M1': Matrix4D data03: not a number: 'left'"),
        (IMPORT, "InstrumentMarker_mni_space.xml", r"InstrumentMarker_mni_space\.xml: unsupported coordinateSpace 'MNI305'"),
        (IMPORT, "InstrumentMarker_truncated.xml", r"InstrumentMarker_truncated\.xml: not well-formed XML"),
        (IMPORT, "InstrumentMarker_entity_bomb.xml", r"InstrumentMarker_entity_bomb\.xml: refused: XML declares entities"),
        (IMPORT, "EntryTarget_empty.xml", r"EntryTarget_empty\.xml: no EntryTarget entries"),
        (POSES, "TriggerMarkers_Coil0_empty.xml", r"TriggerMarkers_Coil0_empty\.xml: the log holds no pulses"),
        (POSES, "TriggerMarkers_Coil0_untracked.xml",
         r"TriggerMarkers_Coil0_untracked\.xml: no tracked pulses in the log \(3 untracked skipped\)"),
        (POSES, "TriggerMarkers_Coil0_scaled_pulse.xml",
         r"TriggerMarkers_Coil0_scaled_pulse\.xml: pulse 'pulse-2' is not a rigid pose: its rotation part is scaled by 0\.9"),
        (POSES, "TriggerMarkers_Coil0_no_intensity.xml",
         r"TriggerMarkers_Coil0_no_intensity\.xml: 1 pulse\(s\) carry no intensity in the log; give --didt or --intensity"),
        (IMPORT, "brainsight_empty.txt", r"brainsight_empty\.txt: no targets and no tracked samples"),
        (IMPORT, "brainsight_internal_space.txt",
         r"brainsight_internal_space\.txt: unsupported Brainsight coordinate system 'Brainsight'"),
        (IMPORT, "brainsight_bad_number.txt", r"brainsight_bad_number\.txt: target 'T1' loc\.z: not a number: 'sixty'"),
        (IMPORT, "visor2_unknown_axes.mrk",
         r"visor2_unknown_axes\.mrk: coil target 'CoilMarker_1': unknown CoilAxesConvention 'localite'"),
        (IMPORT, "visor2_no_coil_targets.mrk", r"visor2_no_coil_targets\.mrk: no coil targets in the ANT visor2 file"),
        (IMPORT, "visor2_matrix_3x4.mrk", r"visor2_matrix_3x4\.mrk: coil target 'CoilMarker_1': RigidTransformMatrix4x4 must be 4x4, got 3x4"),
        (IMPORT, "visor2_not_json.mrk", r"visor2_not_json\.mrk: not valid JSON"),
        (IMPORT, "softaxic_empty.stmpx", r"softaxic_empty\.stmpx: no coil positions"),
        (IMPORT, "softaxic_missing_cosine.stmpx", r"softaxic_missing_cosine\.stmpx: coil position 'P001': <fp> has no m12"),
        (IMPORT, "invesalius_no_world_columns.mkss",
         r"invesalius_no_world_columns\.mkss: no 'x_world' column"),
        (IMPORT, "slicer_no_markups.mrk.json", r"slicer_no_markups\.mrk\.json: not a Slicer markups file"),
        (IMPORT, "unknown_format.dat", r"unknown_format\.dat: cannot tell the file's format; pass --format"),
    ]
    write("navigation", files, [{"file": f, "argv": argv, "error": err} for argv, f, err in cases])


def plans() -> None:
    sheared = deformed(POSE, np.array([[1.0, 0.0, 0.0], [0.05, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    files = {
        "not_json.json": '{"schema_version": 1, "kind": "navigator-plan", "name": "x",\n',
        "newer_schema.json": plan(schema_version=99),
        "wrong_kind.json": plan(kind="navigator-points"),
        "sheared_pose.json": plan(coil_poses=[{"name": "hotspot", "matrix": sheared.tolist()}]),
        "mirrored_pose.json": plan(coil_poses=[{"name": "hotspot", "matrix": deformed(POSE, np.diag([-1.0, 1, 1])).tolist()}]),
        "duplicate_names.json": plan(targets=[{"name": "T", "position": [0, 0, 0]}, {"name": "T", "position": [1, 1, 1]}],
                                     coil_poses=[]),
        "unknown_target.json": plan(coil_poses=[{"name": "hotspot", "matrix": POSE.tolist(), "target": "M1"}]),
        "matrix_3x4.json": plan(coil_poses=[{"name": "hotspot", "matrix": POSE[:3].tolist()}]),
        "mso_over_100.json": plan(coil_poses=[{"name": "hotspot", "matrix": POSE.tolist(), "mso": 150}]),
        "lps_world.json": plan(coordinate_system="LPS"),
        "nan_position.json": plan(coil_poses=[], targets=[{"name": "T", "position": [float("nan"), 0, 0]}]),
        "nothing_to_export.json": plan(targets=[], coil_poses=[]),
        "array.json": "[1, 2, 3]\n",
    }
    cases = [
        (EXPORT, "not_json.json", r"not_json\.json: plan is not valid JSON"),
        (EXPORT, "newer_schema.json", r"newer_schema\.json: plan schema version 99 is newer than this navigator"),
        (EXPORT, "wrong_kind.json", r"wrong_kind\.json: not a navigator plan \(kind 'navigator-points'\)"),
        (EXPORT, "sheared_pose.json",
         r"sheared_pose\.json: coil pose 'hotspot' is not a rigid pose: its rotation part is sheared"),
        (EXPORT, "mirrored_pose.json",
         r"mirrored_pose\.json: coil pose 'hotspot' is not a rigid pose: its rotation part is a reflection"),
        (EXPORT, "duplicate_names.json", r"duplicate_names\.json: duplicate target name\(s\): T"),
        (EXPORT, "unknown_target.json", r"unknown_target\.json: coil pose 'hotspot' refers to unknown target 'M1'"),
        (EXPORT, "matrix_3x4.json", r"matrix_3x4\.json: malformed plan \(ValueError: coil pose 'hotspot' must be a 4x4"),
        (EXPORT, "mso_over_100.json", r"mso_over_100\.json: coil pose 'hotspot': mso 150\.0 exceeds 100 %"),
        (EXPORT, "lps_world.json", r"lps_world\.json: coordinate_system must be 'RAS'"),
        (EXPORT, "nan_position.json", r"nan_position\.json: malformed plan \(ValueError: target 'T' position must be 3 finite"),
        (EXPORT, "nothing_to_export.json", r"nothing_to_export\.json: the plan has no targets, coil poses or montages"),
        (EXPORT, "array.json", r"array\.json: plan must be a JSON object"),
    ]
    write("plans", files, [{"file": f, "argv": argv, "error": err} for argv, f, err in cases])


def _tcd(elements: list, stimulators: list | None = None) -> str:
    return json.dumps({"name": "bad", "stimulatorList": stimulators or [], "coilElementList": elements,
                       "deformRangeList": [], "coilModels": []})


def coils() -> None:
    def b64(a: np.ndarray) -> str:
        return base64.b64encode(zlib.compress(np.ascontiguousarray(a, np.float64).tobytes())).decode()

    files = {
        "empty.ccd": "",
        "count_mismatch.ccd": "# dIdtmax=150.0;coilname=test\n3\n0.01 0 0 0 0 1\n-0.01 0 0 0 0 -1\n",
        "text_in_dipole.ccd": "# dIdtmax=150.0\n2\n0.01 0 0 0 0 1\n-0.01 zero 0 0 0 -1\n",
        "five_columns.ccd": "# dIdtmax=150.0\n1\n0.01 0 0 0 1\n",
        "nan_moment.ccd": "# dIdtmax=150.0\n1\n0.01 0 0 0 0 nan\n",
        "bad_didtmax.ccd": "# dIdtmax=fast;coilname=x\n1\n0.01 0 0 0 0 1\n",
        "not_json.tcd": "{coilElementList: [",
        "no_elements.tcd": json.dumps({"name": "x"}),
        "unknown_element_type.tcd": _tcd([{"type": 7, "points": b64(np.zeros((1, 3))), "values": b64(np.ones((1, 3)))}]),
        "bad_base64.tcd": _tcd([{"type": 1, "points": "%%%not-base64%%%", "values": "%%%"}]),
        "coil.xyz": "0 0 0\n",
        "no_stimulating_elements.tcd": _tcd([]),
        "not_gzip_field.nii.gz": b"not a gzip stream, not a NIfTI A-field either\n",
    }
    cases = [
        (SHOW_COIL, "empty.ccd", r"empty\.ccd: no dipoles found"),
        (SHOW_COIL, "count_mismatch.ccd", r"count_mismatch\.ccd: header says 3 dipoles but the file holds 2"),
        (SHOW_COIL, "text_in_dipole.ccd", r"text_in_dipole\.ccd: line 4: not a number"),
        (SHOW_COIL, "five_columns.ccd", r"five_columns\.ccd: line 3: expected 6 numbers 'x y z mx my mz', got 5"),
        (SHOW_COIL, "nan_moment.ccd", r"nan_moment\.ccd: non-finite dipole position or moment"),
        (SHOW_COIL, "bad_didtmax.ccd", r"bad_didtmax\.ccd: bad dIdtmax 'fast' in header"),
        (SHOW_COIL, "not_json.tcd", r"not_json\.tcd: not valid JSON"),
        (SHOW_COIL, "no_elements.tcd", r"no_elements\.tcd: not a \.tcd coil file \(no coilElementList\)"),
        (SHOW_COIL, "unknown_element_type.tcd", r"unknown_element_type\.tcd: coil element 0: unknown type 7"),
        (SHOW_COIL, "bad_base64.tcd", r"bad_base64\.tcd: element 0 points: not valid base64/zlib data"),
        (SHOW_COIL, "coil.xyz", r"coil\.xyz: unknown coil file type \(use \.ccd, \.tcd, \.nii or \.nii\.gz\)"),
        (SHOW_COIL, "no_stimulating_elements.tcd", r"no_stimulating_elements\.tcd: coil has no stimulating elements"),
        (SHOW_COIL, "not_gzip_field.nii.gz", r"not_gzip_field\.nii\.gz: cannot read NIfTI coil"),
    ]
    write("coils", files, [{"file": f, "argv": argv, "error": err} for argv, f, err in cases])


def manifests() -> None:
    good = {"schema_version": 1, "subject_id": "sub-01", "created": "2026-12-01T10:00:00+00:00",
            "software_version": "0.1.0", "sources": {}, "steps": {}}

    def m(**over) -> str:
        d = dict(good)
        d.update(over)
        return json.dumps(d, indent=1)

    files = {
        "not_json/subject.json": '{"schema_version": 1, "subject_id": ',
        "array/subject.json": "[]\n",
        "newer_schema/subject.json": m(schema_version=42),
        "string_schema/subject.json": m(schema_version="1"),
        "no_subject_id/subject.json": json.dumps({k: v for k, v in good.items() if k != "subject_id"}),
        "source_without_hash/subject.json": m(sources={"t1": {"path": "sources/T1.nii.gz"}}),
        "missing_source/subject.json": m(sources={"T1": {"path": "input/T1.nii.gz", "sha256": "0" * 64,
                                                         "original": "/data/sub-01_T1w.nii.gz"}}),
        "malformed_step/subject.json": m(steps={"mesh": ["head.msh"]}),
        "no_manifest/README.txt": "a folder that is not a navigator workspace\n",
    }
    cases = [
        (WORKSPACE, "not_json", r"not_json/subject\.json: manifest is not valid JSON"),
        (WORKSPACE, "array", r"array/subject\.json: manifest must be a JSON object"),
        (WORKSPACE, "newer_schema", r"newer_schema/subject\.json: manifest schema version 42 is newer than this navigator"),
        (WORKSPACE, "string_schema", r"string_schema/subject\.json: manifest has no integer schema_version"),
        (WORKSPACE, "no_subject_id", r"no_subject_id/subject\.json: manifest field 'subject_id' missing"),
        (WORKSPACE, "source_without_hash", r"source_without_hash/subject\.json: source 't1' lacks path or sha256"),
        (WORKSPACE, "missing_source", r"missing_source/input/T1\.nii\.gz: file named in subject\.json is missing"),
        (WORKSPACE, "malformed_step", r"malformed_step/subject\.json: step 'mesh' is malformed"),
        (WORKSPACE, "no_manifest", r"no_manifest: not a navigator workspace \(no subject\.json\)"),
    ]
    write("manifests", files, [{"file": f, "argv": argv, "error": err} for argv, f, err in cases])


if __name__ == "__main__":
    navigation()
    plans()
    coils()
    manifests()
    print("wrote", ", ".join(str(HERE / g) for g in ("navigation", "plans", "coils", "manifests")))
