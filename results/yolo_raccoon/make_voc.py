"""Arranges ../shared/detection/raccoon (images/, annotations/, its train/test CSVs) as a VOC
folder: JPEGImages/ (links), Annotations/ (links), ImageSets/Main/{train,test}.txt from the
CSVs. A photo listed in both CSVs would go to test alone, so that no test photo is trained on
(in this copy no file name is in both; four pairs of byte-identical photos under two names,
raccoon-11/116, -52/74, -65/98, -83/120, are all in train).

    python make_voc.py SOURCE OUT
"""
import csv
import os
import sys


def main(source, out):
    for folder in ('JPEGImages', 'Annotations', os.path.join('ImageSets', 'Main')):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    splits = {}
    for split in ('train', 'test'):
        with open(os.path.join(source, '%s_labels.csv' % split)) as f:
            splits[split] = sorted({row['filename'] for row in csv.DictReader(f)})
    both = set(splits['train']) & set(splits['test'])
    splits['train'] = [name for name in splits['train'] if name not in both]
    for split, names in splits.items():
        with open(os.path.join(out, 'ImageSets', 'Main', split + '.txt'), 'w') as f:
            f.writelines(os.path.splitext(name)[0] + '\n' for name in names)
        for name in names:
            stem = os.path.splitext(name)[0]
            for src, dst in ((os.path.join('images', name), os.path.join('JPEGImages', name)),
                             (os.path.join('annotations', stem + '.xml'),
                              os.path.join('Annotations', stem + '.xml'))):
                target = os.path.join(out, dst)
                if not os.path.lexists(target):
                    os.symlink(os.path.abspath(os.path.join(source, src)), target)
    print('train %d, test %d photos (in both CSVs, kept in test only: %s)' % (
        len(splits['train']), len(splits['test']), ', '.join(sorted(both)) or 'none'))


if __name__ == '__main__':
    main(*sys.argv[1:3])
