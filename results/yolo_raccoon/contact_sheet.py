"""The photos predict.py drew, side by side at 240 pixels high, as one small JPEG.

    python contact_sheet.py DRAWN_DIR OUT.jpg
"""
import os
import sys

from PIL import Image

HEIGHT = 240


def main(folder, out):
    photos = []
    for name in sorted(os.listdir(folder)):
        with Image.open(os.path.join(folder, name)) as image:
            width = round(image.width * HEIGHT / image.height)
            photos.append(image.convert('RGB').resize((width, HEIGHT), Image.LANCZOS))
    sheet = Image.new('RGB', (sum(p.width for p in photos) + 4 * (len(photos) - 1), HEIGHT),
                      (255, 255, 255))
    left = 0
    for photo in photos:
        sheet.paste(photo, (left, 0))
        left += photo.width + 4
    sheet.save(out, quality=80)
    print('wrote %s (%d photos, %dx%d)' % (out, len(photos), sheet.width, sheet.height))


if __name__ == '__main__':
    main(*sys.argv[1:3])
